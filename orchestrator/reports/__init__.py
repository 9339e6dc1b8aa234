"""Reports read from the state for people outside the admins' shell (the collective's public page)."""
