"""The vocabulary: AT Protocol identifiers, lexicons and validation, the domain events we
store, and the event log itself. No HTTP, no HTML; imports nothing of ours."""
