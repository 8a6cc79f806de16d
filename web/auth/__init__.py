"""Who is asking, and may they: credentials, sessions, CSRF, sign-in."""
