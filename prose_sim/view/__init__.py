"""The run viewer: one self-contained HTML file to browse a recorded run.

``build`` reads a run folder's event log into the viewer's data (``model``),
``diff`` computes the word-level diffs, and ``render`` writes the page: the
data embedded compactly (episode details gzipped in chunks, documents once),
CSS and JavaScript inlined from ``templates/``, no network needed.
"""
