"""The deploy engine: phases that run on the target and report what they saw. No Textual here."""
