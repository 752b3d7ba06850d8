"""Outbound campaigns: contacts uploaded as CSV are called within calling hours, paced by the agents available in
the campaign's queue and held back by the abandon-rate guard (docs/campaigns.md).

Modules: `model` (the settings of a campaign), `contacts` (CSV parsing and checks), `pacing` (how many may ring
at once), `hours` (calling hours in the contact's zone), `dialer` (the runner over storage and call control).
"""
