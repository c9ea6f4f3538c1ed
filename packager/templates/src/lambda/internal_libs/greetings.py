"""Code shared by every function of src/lambda (published as one layer)."""


def greet(name):
    return f"hello, {name}"
