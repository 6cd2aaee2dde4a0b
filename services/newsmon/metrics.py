"""Every Prometheus metric newsmon exports, in one place so names stay consistent.

Services increment these; the API serves them at /metrics. Label values are bounded (topic ids, outcomes, feed
ids from config), never article ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# poller
POLLS = Counter("newsmon_polls_total", "Feed polls by outcome", ["outcome"])
POLL_SECONDS = Histogram("newsmon_poll_seconds", "Time to fetch one feed")
PARSE_SECONDS = Histogram("newsmon_parse_seconds", "Time to parse one feed document")
ARTICLES = Counter("newsmon_articles_total", "Articles published to the bus", ["kind"])
FEED_ERRORS = Counter("newsmon_feed_errors_total", "Feed poll failures by error class", ["error"])
GAPS = Counter("newsmon_feed_gaps_total", "Polls that suggest missed items")

# classifier
CLASSIFIED = Counter("newsmon_classified_total", "Articles classified", ["lang"])
MATCHES = Counter("newsmon_matches_total", "Topic matches", ["topic"])
CLASSIFY_SECONDS = Histogram("newsmon_classify_seconds", "Time to classify one article",
                             buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5))

# alerter
ALERTS = Counter("newsmon_alerts_total", "Alert notifications produced", ["topic", "kind"])
SUPPRESSED = Counter("newsmon_alerts_suppressed_total", "Notifications not sent, by reason", ["reason"])
DELIVERIES = Counter("newsmon_deliveries_total", "Delivery attempts by channel and outcome", ["channel", "outcome"])
DELIVERY_SECONDS = Histogram("newsmon_delivery_seconds", "Time of one delivery attempt", ["channel"])
RETRY_QUEUE = Gauge("newsmon_delivery_retry_queue", "Deliveries waiting for a retry")
DEAD_LETTERS = Gauge("newsmon_delivery_dead_letters", "Deliveries in the dead-letter store")
SUBSCRIPTIONS = Gauge("newsmon_alerter_subscriptions",
                      "Subscriptions the alerter routes to, by origin (config, api; ignored: stored ones that are "
                      "invalid or whose id the config also uses)", ["origin"])
SUBSCRIPTION_RELOAD_ERRORS = Counter("newsmon_alerter_subscription_reload_errors_total",
                                     "Failed re-reads of the stored subscriptions (the last set stays in use)")
LOOP_RETRIES = Counter("newsmon_alerter_loop_retries_total",
                       "Retriable errors (a store or bus outage, e.g. a database restart) an alerter loop backed "
                       "off from and retried", ["loop"])
E2E_SECONDS = Histogram("newsmon_end_to_end_seconds", "From article fetched to alert delivered",
                        buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600))

# bus
BUS_ERRORS = Counter("newsmon_bus_handler_errors_total", "Messages whose handler failed", ["group", "outcome"])
BUS_LAG = Gauge("newsmon_bus_lag", "Uncommitted messages per consumer group", ["group"])
BUS_CONSUMED = Counter("newsmon_bus_consumed_total", "Messages handled and committed", ["group"])

# process
STARTUP_RETRIES = Counter("newsmon_startup_retries_total",
                          "Failed attempts to reach the bus or the store at start-up, each followed by a wait",
                          ["dependency"])
