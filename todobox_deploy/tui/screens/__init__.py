"""Screens: the wizard, the phase confirmation modal and the read-only sign-off."""
