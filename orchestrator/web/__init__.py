"""The web app (`ruche serve`): association members' pages and a small JSON API."""
