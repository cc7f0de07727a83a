from django.urls import path

from notifications import api

urlpatterns = [
    path("channels/<id:channel_id>/notifications/", api.ChannelLevelApi.as_view()),
    path("notifications/", api.NotificationListApi.as_view()),
    path("notifications/read/", api.NotificationReadApi.as_view()),
]
