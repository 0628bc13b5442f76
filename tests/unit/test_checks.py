from ops.checks import development_keys_check


def test_development_keys_refuse_to_start_when_debug_is_off(settings):
    settings.DEBUG = False
    settings.ALLOW_DEV_KEYS = False
    settings.FIELD_ENCRYPTION_KEYS = [settings.DEV_ENCRYPTION_KEY]
    settings.SECRET_KEY = settings.DEV_SECRET_KEY
    messages = development_keys_check(None)
    assert {m.id for m in messages} == {"syncapp.E001", "syncapp.E002"}
    assert all(m.is_serious() for m in messages)


def test_the_explicit_escape_turns_the_errors_into_warnings(settings):
    settings.DEBUG = False
    settings.ALLOW_DEV_KEYS = True
    settings.FIELD_ENCRYPTION_KEYS = [settings.DEV_ENCRYPTION_KEY]
    settings.SECRET_KEY = settings.DEV_SECRET_KEY
    messages = development_keys_check(None)
    assert {m.id for m in messages} == {"syncapp.W001", "syncapp.W002"}
    assert not any(m.is_serious() for m in messages)


def test_a_development_key_anywhere_in_the_list_counts(settings):
    settings.DEBUG = False
    settings.ALLOW_DEV_KEYS = False
    settings.FIELD_ENCRYPTION_KEYS = ["a-real-key", settings.DEV_ENCRYPTION_KEY]
    settings.SECRET_KEY = "a-real-secret-key-from-the-environment"
    assert {m.id for m in development_keys_check(None)} == {"syncapp.E001"}


def test_real_keys_or_debug_give_no_message(settings):
    settings.DEBUG = False
    settings.ALLOW_DEV_KEYS = False
    settings.FIELD_ENCRYPTION_KEYS = ["a-real-key-from-the-environment"]
    settings.SECRET_KEY = "a-real-secret-key-from-the-environment"
    assert development_keys_check(None) == []
    settings.DEBUG = True
    settings.FIELD_ENCRYPTION_KEYS = [settings.DEV_ENCRYPTION_KEY]
    assert development_keys_check(None) == []
