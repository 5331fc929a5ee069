"""Scheduled work in the bot process: database timers and the idle-approval sweep."""
