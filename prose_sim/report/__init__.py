"""Reading runs back: transcripts, tables and plots, computed from the event log."""
