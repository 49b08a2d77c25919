"""Live Reddit recorder (PRAW listings, edits, rate limits)."""
