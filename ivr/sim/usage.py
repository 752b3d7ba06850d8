"""520 usage texts: what Asterisk 22 sends between "520-Invalid command syntax." and "520 End of proper usage."

Rules for this file:
- The texts of the commands present in tests/data/asterisk/ (agi-01, agi-05, agi-07) are verbatim copies of the
  recorded bytes; tests compare them line by line.
- Commands whose usage was not recorded get `generic_usage()`: one honest line naming the command, so a client
  still sees a well-formed multi-line 520 block.
"""

from __future__ import annotations

USAGE: dict[str, tuple[str, ...]] = {
    'SET VARIABLE': ('Sets a variable to the current channel.',),
    'STREAM FILE': (
        'Send the given file, allowing playback to be interrupted by the given digits, if any. Returns'
        ' <literal>0</literal> if playback completes without a digit being pressed, or the ASCII numerical value'
        ' of the digit if one was pressed, or <literal>-1</literal> on error or if the channel was disconnected.'
        ' If musiconhold is playing before calling stream file it will be automatically stopped and will not be'
        ' restarted after completion.',
        'It sets the following channel variables upon completion:',
        '<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.',
        '    <value>SUCCESS</value>',
        '    <value>FAILED</value>',
    ),
    'GET DATA': (
        'Stream the given <replaceable>file</replaceable>, and receive DTMF data.',
        'Returns the digits received from the channel at the other end.',
    ),
    'WAIT FOR DIGIT': (
        'Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a DTMF digit. Returns'
        ' <literal>-1</literal> on channel failure, <literal>0</literal> if no digit is received in the timeout,'
        ' or the numerical value of the ascii of the digit if one is received. Use <literal>-1</literal> for the'
        ' <replaceable>timeout</replaceable> value if you desire the call to block indefinitely.',
    ),
    'GET VARIABLE': (
        'Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. Returns'
        ' <literal>1</literal> if <replaceable>variablename</replaceable> is set and returns the variable in'
        ' parentheses.',
        'Example return code: 200 result=1 (testvariable)',
    ),
    'EXEC': (
        'Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.',
        'Returns whatever the <replaceable>application</replaceable> returns, or <literal>-2</literal> on failure'
        ' to find <replaceable>application</replaceable>.',
        '<note>NOTE:</note> exec does not evaluate dialplan functions and variables unless it is explicitly'
        ' enabled by setting the <variable>AGIEXECFULL</variable> variable to <literal>yes</literal>.',
    ),
    'SAY NUMBER': (
        'Say a given number, returning early if any of the given DTMF digits are received on the channel. '
        ' Returns <literal>0</literal> if playback completes without a digit being pressed, or the ASCII'
        ' numerical value of the digit if one was pressed or <literal>-1</literal> on error/hangup.',
    ),
    'SET MUSIC': (
        'Enables/Disables the music on hold generator. If <replaceable>class</replaceable> is not specified, then'
        ' the <literal>default</literal> music on hold class will be used. This generator will be stopped'
        ' automatically when playing a file.',
        'Always returns <literal>0</literal>.',
    ),
}


def generic_usage(command: str) -> tuple[str, ...]:
    """Usage for a command whose real text was not recorded (the simulator does not invent Asterisk docs)."""
    return (f"Usage of {command}: see the Asterisk AGI documentation for its arguments.",)
