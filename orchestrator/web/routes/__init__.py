"""The app's routes, one router per area: public pages, members' pages, the join page, admins' pages, the JSON API."""
