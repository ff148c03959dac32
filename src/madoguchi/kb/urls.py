from django.urls import path

from madoguchi.kb import views

app_name = "kb"
urlpatterns = [
    path("kb/", views.index, name="index"),
    path("kb/new/", views.new_article, name="new"),
    path("kb/import/", views.import_file, name="import"),
    path("kb/import/<int:job_id>/", views.import_job, name="import_job"),
    path("kb/a/<int:article_id>/", views.article, name="article"),
    path("kb/a/<int:article_id>/status/", views.set_status, name="status"),
    path("kb/a/<int:article_id>/translations/", views.translations, name="translations"),
    path("kb/a/<int:article_id>/restore/", views.restore, name="restore"),
    path("kb/a/<int:article_id>/diff/", views.diff, name="diff"),
    path("kb/a/<int:article_id>/used/", views.suggestion_used, name="used"),
    path("kb/report/", views.report, name="report"),
    path("kb/candidates/<int:conversation_id>/draft/", views.candidate_draft, name="candidate_draft"),
    path("kb/social/<int:post_id>/", views.social_post_decide, name="social_decide"),
    path("kb/social/brand/<int:brand_id>/", views.social_settings, name="social_settings"),
    path("kb/suggest/<int:conversation_id>/", views.suggestions, name="suggest"),
    path("kb/save-faq/<int:conversation_id>/", views.save_as_faq, name="save_faq"),
    # the public help site
    path("help/<int:brand_id>/", views.help_home, name="help_home"),
    path("help/<int:brand_id>/c/<int:category_id>/", views.help_category, name="help_category"),
    path("help/<int:brand_id>/search/", views.help_search, name="help_search"),
    path("help/<int:brand_id>/feed.atom", views.help_feed, name="help_feed"),
    path("help/<int:brand_id>/c/<int:category_id>/feed.atom", views.help_feed, name="help_category_feed"),
    path("help/<int:brand_id>/sitemap.xml", views.help_sitemap, name="help_sitemap"),
    path("help/a/<int:article_id>/", views.public_article, name="public_article"),
    path("help/a/<int:article_id>/vote/", views.vote, name="vote"),
    path("help/a/<int:article_id>/<str:slug>/", views.public_article, name="public_article_slug"),
]
