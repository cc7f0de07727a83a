from django.urls import path

from files import api

urlpatterns = [
    path("files/", api.FileUploadApi.as_view()),
]
