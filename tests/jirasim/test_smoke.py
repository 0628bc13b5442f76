import requests


def test_myself_answers_for_the_admin(sim):
    r = requests.get(sim.base_url + "/rest/api/2/myself", auth=sim.auth)
    assert r.status_code == 200
    assert r.json()["emailAddress"] == "admin@example.com"
