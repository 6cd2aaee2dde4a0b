"""Delivery channels: webhook (Standard Webhooks, Slack, Teams) and email."""
