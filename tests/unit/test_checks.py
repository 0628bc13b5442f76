from ops.checks import development_keys_check


def test_development_keys_are_warned_about_when_debug_is_off(settings):
    settings.DEBUG = False
    settings.FIELD_ENCRYPTION_KEYS = [settings.DEV_ENCRYPTION_KEY]
    settings.SECRET_KEY = settings.DEV_SECRET_KEY
    ids = {w.id for w in development_keys_check(None)}
    assert ids == {"syncapp.W001", "syncapp.W002"}


def test_real_keys_or_debug_give_no_warning(settings):
    settings.DEBUG = False
    settings.FIELD_ENCRYPTION_KEYS = ["a-real-key-from-the-environment"]
    settings.SECRET_KEY = "a-real-secret-key-from-the-environment"
    assert development_keys_check(None) == []
    settings.DEBUG = True
    settings.FIELD_ENCRYPTION_KEYS = [settings.DEV_ENCRYPTION_KEY]
    assert development_keys_check(None) == []
