"""Lambda: greet the name in the event. Locally: `pkg invoke lambda/hello --event event.json`."""

from internal_libs.greetings import greet


def handler(event, context):
    return {"message": greet(event.get("name", "world"))}
