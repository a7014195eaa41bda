"""CronWorkflow: the pure schedule maths (`schedule`) and its kopf controller (`controller`)."""
