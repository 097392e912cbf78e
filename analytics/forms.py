"""The Usage page's period picker: this month, the last 30 days, or from/to."""

import datetime as dt

from django import forms

from analytics.selectors import GROUP_BY, MAX_DATE, MAX_RANGE_DAYS, MIN_DATE, month_bounds

PERIODS = [("month", "This month"), ("30d", "Last 30 days"), ("custom", "Custom")]


class UsagePeriodForm(forms.Form):
    """Reads ?period=month|30d|custom&from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=... (the API's names)."""

    period = forms.ChoiceField(choices=PERIODS, required=False)
    start = forms.DateField(label="From", required=False, error_messages={"invalid": "Enter a date."})
    end = forms.DateField(label="To", required=False, error_messages={"invalid": "Enter a date."})
    group_by = forms.ChoiceField(choices=[(name, name) for name in GROUP_BY], required=False)

    def __init__(self, data, *, today: dt.date, **kwargs):
        data = {"period": data.get("period", ""), "start": data.get("from", ""), "end": data.get("to", ""),
                "group_by": data.get("group_by", "")}
        super().__init__(data, **kwargs)
        self.today = today

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        start, end = cleaned.get("start"), cleaned.get("end")
        period = cleaned.get("period") or ("custom" if (start or end) else "month")
        if period == "month":
            start, end = month_bounds(self.today)[0], self.today
        elif period == "30d":
            start, end = self.today - dt.timedelta(days=29), self.today
        elif start is None or end is None:
            raise forms.ValidationError("Choose both a first and a last day.")
        elif not (MIN_DATE <= start <= MAX_DATE and MIN_DATE <= end <= MAX_DATE):
            raise forms.ValidationError(f"Choose days between {MIN_DATE:%-d %B %Y} and {MAX_DATE:%-d %B %Y}.")
        elif start > end:
            self.add_error("start", "The first day must not be after the last day.")
            return cleaned
        elif (end - start).days + 1 > MAX_RANGE_DAYS:
            self.add_error("end", f"Choose at most {MAX_RANGE_DAYS} days.")
            return cleaned
        cleaned.update(period=period, start=start, end=end, group_by=cleaned.get("group_by") or "day")
        return cleaned
