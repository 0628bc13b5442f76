from jiraapi.adf import wiki_to_adf
from sync.fields import fingerprint


def test_rich_text_compares_by_words_across_adf_and_wiki():
    adf = wiki_to_adf("*Alice* wrote:\n\nA _comment_ with [a link|https://x.example]")
    wiki = "*Alice* wrote:\n\nA _comment_ with [a link|https://x.example]"
    for name in ("comment", "description"):
        assert fingerprint(name, adf) == fingerprint(name, wiki)
        assert fingerprint(name, wiki) != fingerprint(name, wiki + " more")


def test_labels_compare_regardless_of_order_and_users_by_id():
    assert fingerprint("labels", ["b", "a"]) == fingerprint("labels", ["a", "b"])
    assert fingerprint("assignee", {"id": "u1", "name": "A"}) == fingerprint(
        "assignee", {"id": "u1", "name": "Another name"}
    )
    assert fingerprint("summary", "x") != fingerprint("priority", "x")
