/// Thin Swift layer over rabbitmq-c.
