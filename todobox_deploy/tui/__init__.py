"""The Textual front end. Build it with ``todobox_deploy.tui.app.make_app``; nothing outside imports it.

Keys on the wizard: r run selected phase, g run next, c/space confirm (manual item or finished phase),
esc/ctrl+c cancel phase, l follow live, / search log (n/N next/prev), f follow on/off, s sign-off,
ctrl+p command palette, ctrl+q quit.
"""
