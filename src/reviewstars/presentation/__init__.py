"""What a person sees of the results: the terminal's tables (`tables`), the PNG plots
(`plots`) and the compare report (`report`: report.md and report.html). A new report
section or table lives here; nothing here computes a score."""
