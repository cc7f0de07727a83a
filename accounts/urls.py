from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/csrf/", api.CsrfApi.as_view()),
    path("auth/register/", api.RegisterApi.as_view()),
    path("auth/login/", api.LoginApi.as_view()),
    path("auth/logout/", api.LogoutApi.as_view()),
    path("auth/me/", api.MeApi.as_view()),
    path("auth/password/", api.PasswordChangeApi.as_view()),
    path("users/", api.UserSearchApi.as_view()),
]
