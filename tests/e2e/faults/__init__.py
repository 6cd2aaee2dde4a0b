"""Helpers of the fault-injection test and the pipeline benchmark: a generated article stream, a supervisor of
newsmon worker processes, a webhook receiver that can go down, and bus/store probes."""
