"""Training jobs as a service: the queue in the database and the worker that runs them."""
