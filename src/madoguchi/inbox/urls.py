from django.urls import path

from madoguchi.inbox import views

app_name = "inbox"
urlpatterns = [
    path("", views.index, name="index"),
    path("c/<int:conversation_id>/", views.conversation, name="conversation"),
    path("c/<int:conversation_id>/messages/", views.older_messages, name="older_messages"),
    path("c/<int:conversation_id>/reply/", views.reply, name="reply"),
    path("c/<int:conversation_id>/status/", views.set_status, name="status"),
    path("c/<int:conversation_id>/assign/", views.assign, name="assign"),
    path("c/<int:conversation_id>/priority/", views.set_priority, name="priority"),
    path("c/<int:conversation_id>/labels/", views.set_labels, name="labels"),
    path("c/<int:conversation_id>/presence/", views.presence, name="presence"),
    path("m/<int:message_id>/retry/", views.retry, name="retry"),
    path("m/<int:message_id>/move/", views.move_message, name="move"),
    path("bulk/", views.bulk, name="bulk"),
    path("events/", views.events, name="events"),
    path("attachments/<int:attachment_id>/", views.attachment, name="attachment"),
]
