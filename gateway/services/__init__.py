"""Services every way in calls (webhook, CRM adapters, mapped JSON, event files)."""
