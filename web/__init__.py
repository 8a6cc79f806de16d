"""The aiohttp application: HTML pages and the JSON API. The top layer."""
