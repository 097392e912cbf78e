# Models of this app arrive with its own issue; tenant-owned ones derive from
# tenants.scoping.TenantOwnedModel.
