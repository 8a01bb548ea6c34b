from django.urls import path

from controlplane.web import views

urlpatterns = [path("", views.home, name="home")]
