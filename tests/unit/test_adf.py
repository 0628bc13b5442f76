from jiraapi.adf import adf_to_wiki, wiki_to_adf

WIKI = """h2. Title

Some *bold* and _italic_ text with {{code}} and [a link|https://example.com]
second line

* one
** nested
* two

# first
# second

{code:python}
print(1)
{code}

----"""


def test_wiki_survives_a_round_trip_through_adf():
    assert adf_to_wiki(wiki_to_adf(WIKI)) == WIKI


def test_adf_marks_and_structure():
    doc = wiki_to_adf("Hello *world*")
    assert doc == {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Hello "},
                    {"type": "text", "text": "world", "marks": [{"type": "strong"}]},
                ],
            }
        ],
    }


def test_unknown_adf_nodes_degrade_to_their_text():
    doc = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "mysteryBlock", "content": [{"type": "text", "text": "kept"}]},
            {"type": "paragraph", "content": [{"type": "status", "attrs": {}}]},
        ],
    }
    assert "kept" in adf_to_wiki(doc)


def test_empty_values():
    assert adf_to_wiki(None) == ""
    assert wiki_to_adf(None) is None
    assert wiki_to_adf("") == {"type": "doc", "version": 1, "content": []}
