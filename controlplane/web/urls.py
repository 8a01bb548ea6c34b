from django.urls import path

from controlplane.web import (
    audit,
    budgets,
    costs,
    keys,
    overview,
    people,
    providers,
    requests,
    views,
)

urlpatterns = [
    path("", overview.overview, name="home"),
    path("me/", views.my_usage, name="me"),
    path("keys/", keys.key_list, name="keys"),
    path("keys/<id:key_id>/rotate/", keys.key_rotate, name="key-rotate"),
    path("keys/<id:key_id>/disable/", keys.key_disable, name="key-disable"),
    path("keys/<id:key_id>/enable/", keys.key_enable, name="key-enable"),
    path("budgets/", budgets.budget_page, name="budgets"),
    path("budgets/set/", budgets.budget_set, name="budget-set"),
    path("budgets/<id:budget_id>/delete/", budgets.budget_delete, name="budget-delete"),
    path("requests/", requests.request_list, name="requests"),
    path("requests/export.csv", requests.request_csv, name="requests-csv"),
    path("requests/<str:request_id>/", requests.request_detail, name="request-detail"),
    path("costs/", costs.cost_page, name="costs"),
    path("costs/export.csv", costs.cost_csv, name="costs-csv"),
    path("audit/", audit.audit_page, name="audit"),
    path("people/", people.people_page, name="people"),
    path("people/add/", people.member_add, name="member-add"),
    path("people/teams/add/", people.team_add, name="team-add"),
    path("people/<str:username>/", people.member_set, name="member-set"),
    path("providers/", providers.provider_page, name="providers"),
    path("providers/<id:provider_id>/credential/", providers.provider_credential, name="provider-credential"),
    path("providers/prices/<id:price_id>/", providers.price_edit, name="price-edit"),
]
