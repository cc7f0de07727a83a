from django.urls import path

from workspace_chat import api

urlpatterns = [
    path("workspaces/", api.WorkspaceListApi.as_view()),
    path("workspaces/<id:workspace_id>/", api.WorkspaceDetailApi.as_view()),
    path("workspaces/<id:workspace_id>/members/", api.WorkspaceMemberAddApi.as_view()),
    path("workspaces/<id:workspace_id>/members/<id:user_id>/", api.MemberDetailApi.as_view()),
    path("channels/<id:channel_id>/members/", api.ChannelMembersApi.as_view()),
    path("channels/<id:channel_id>/members/<id:user_id>/", api.ChannelMemberDetailApi.as_view()),
    path("workspaces/<id:workspace_id>/channels/", api.ChannelListApi.as_view()),
    path("workspaces/<id:workspace_id>/dms/", api.DmGetOrCreateApi.as_view()),
    path("channels/<id:channel_id>/messages/", api.MessageHistoryApi.as_view()),
    path("channels/<id:channel_id>/pins/", api.PinListApi.as_view()),
    path("channels/<id:channel_id>/messages/<id:message_id>/", api.MessageDetailApi.as_view()),
    path("channels/<id:channel_id>/messages/<id:message_id>/grade/", api.MessageGradeApi.as_view()),
    path("channels/<id:channel_id>/messages/<id:message_id>/reactions/", api.ReactionAddApi.as_view()),
    # The emoji percent-encoded: Django decodes the path before matching.
    path("channels/<id:channel_id>/messages/<id:message_id>/reactions/<str:emoji>/", api.ReactionRemoveApi.as_view()),
    path("channels/<id:channel_id>/messages/<id:message_id>/thread/", api.ThreadApi.as_view()),
    path("channels/<id:channel_id>/messages/<id:message_id>/report/", api.ReportCreateApi.as_view()),
    path("workspaces/<id:workspace_id>/reports/", api.ReportListApi.as_view()),
    path("workspaces/<id:workspace_id>/audit/", api.AuditListApi.as_view()),
    path("workspaces/<id:workspace_id>/reports/<id:report_id>/resolve/", api.ReportResolveApi.as_view()),
    path("workspaces/<id:workspace_id>/invites/", api.InviteListApi.as_view()),
    path("workspaces/<id:workspace_id>/invites/<str:code>/", api.InviteDetailApi.as_view()),
    path("invites/<str:code>/accept/", api.InviteAcceptApi.as_view()),
    path("workspaces/<id:workspace_id>/mutes/", api.MuteCreateApi.as_view()),
    path("workspaces/<id:workspace_id>/mutes/<id:user_id>/", api.MuteDeleteApi.as_view()),
]
