"""The Faust app that wires crawlers, scorer, decisions and notifier together over Kafka topics."""
