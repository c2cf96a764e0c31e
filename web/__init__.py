"""The web layer beside `routes/`: request and response models (pydantic, and so the OpenAPI document) and the
WSGI serving. Routes parse with these models and call one method of a scenario or a study."""
