"""Code shared by the example Lambda functions (imported as internal_libs.<module>)."""
