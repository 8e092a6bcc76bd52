"""The dashboards' pages: the live boards (实时大屏, city and district) and the mayor's office
monthly report with its downloads, drill-down and the rates of any period."""
