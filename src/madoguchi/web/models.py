"""The web app has no models. This module exists so that Django sends the app its post_migrate
signal (only apps with a models module get it): `apps.WebConfig` creates the shared cache's
table then."""
