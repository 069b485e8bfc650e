"""The master patient index at the hub: storage, linking on arrival, curation, API."""
