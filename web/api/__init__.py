"""The JSON API: public reads, health, and the admin API."""
