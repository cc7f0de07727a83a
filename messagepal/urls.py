from django.urls import path

from messagepal import api

urlpatterns = [
    path("messagepal/conversations/", api.ConversationListApi.as_view()),
    path("messagepal/conversations/<str:conversation_id>/messages/", api.ConversationMessagesApi.as_view()),
    path("messagepal/blocks/", api.BlockListApi.as_view()),
    path("messagepal/blocks/<id:user_id>/", api.BlockDeleteApi.as_view()),
]
