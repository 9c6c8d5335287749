"""Results: statistics, SQL aggregation, the HTML report, comparing runs, export/merge and browsing.

(The store, its schema and the text report move here in the package re-layout, issue 14.)
"""
