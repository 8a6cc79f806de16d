"""The operator's and moderators' pages."""
