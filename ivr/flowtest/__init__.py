"""Flow tests: scripted callers (`caller`) run through the production engine on a scripted channel in virtual time
(`channel`, `runner`) or on the simulated Asterisk over FastAGI (`simrun`); test files (`testspec`), verdicts
(`verdict`), coverage over the flow graph (`coverage`), park comebacks (`comeback`) and recording a call as a test
case (`casewriter`). The `test-flows` and `simulate` commands (`ivr.tools.flowtest`, `ivr.tools.simulate`) drive it.

Rules for this package: it never imports the admin tools (`ivr.tools`), the HTTP API or the service.
"""
