"""The hub service: institutions, catalog, studies, decisions, federated jobs."""
