"""`razzle play`: play against the AI in the terminal, or watch it play itself."""

from __future__ import annotations

import time

from razzle.cli.common import DefaultsHelpFormatter, add_search_arguments, load_evaluator, search_config
from razzle.game import IllegalMoveError, Position, Rules
from razzle.game.notation import GameRecord
from razzle.search.agent import SearchAgent, Thought

HELP = """Type an action or a whole turn:
  b1-c3        a knight move
  d1-e1        one pass (the chain stays open: pass again or type 'end')
  d1-e1-e5     a whole pass chain; its 'end' is implied
  end          finish the pass chain
Several may stand on one line ('d1-e1 end'). Commands: moves, undo, help, quit."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "play", help="play against the AI in the terminal (or --watch it)", formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument("--model", help="model file (iter_NNNN.pt); without it the AI is MCTS with a uniform prior")
    parser.add_argument("--play-as", type=int, choices=(1, 2), default=1, help="your side: 1 moves first")
    parser.add_argument("--watch", action="store_true", help="AI against AI")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds between turns when watching")
    parser.add_argument("--max-turns", type=int, default=Rules.max_turns, help="turn limit of the game")
    parser.add_argument("--top", type=int, default=3, help="how many of the AI's candidate moves to show")
    add_search_arguments(parser)
    parser.set_defaults(func=run)


def describe(thought: Thought, top: int) -> str:
    """The move played and the search's `top` candidates; the played one is always listed,
    marked with '*'."""
    shown = list(thought.candidates[:top])
    if all(c.action != thought.action for c in shown):
        shown += [c for c in thought.candidates if c.action == thought.action]
    lines = [f"AI plays {thought.action}  (value {thought.value:+.2f} for the side to move)"]
    for c in shown:
        mark = "*" if c.action == thought.action else " "
        lines.append(f"  {mark} {c.action:<8} visits {c.visits:>5}  value {c.value:+.2f}  prior {c.prior:.2f}")
    return "\n".join(lines)


def _finish(position: Position, actions: list[str]) -> int:
    print(position)
    print(GameRecord(actions, position.rules).to_text())
    return 0


def run(args) -> int:
    try:
        rules = Rules(max_turns=args.max_turns)
    except ValueError as error:
        raise SystemExit(f"razzle play: {error}") from None
    agent = SearchAgent(load_evaluator(args.model, args.device, "razzle play"), search_config(args))
    position, actions = Position.initial(rules), []
    if args.watch:
        while not position.is_terminal:
            print(position)
            position, thoughts = agent.play_turn(position)
            for thought in thoughts:
                print(describe(thought, args.top))
                actions.append(thought.action)
            time.sleep(args.delay)
        return _finish(position, actions)

    human = args.play_as - 1
    history: list[tuple[Position, int]] = []  # positions where the human was about to move
    print(HELP)
    while not position.is_terminal:
        if position.to_move != human:
            position, thoughts = agent.play_turn(position)
            for thought in thoughts:
                print(describe(thought, args.top))
                actions.append(thought.action)
            continue
        print(position)
        try:
            line = input("your move> ").strip()
        except EOFError:
            print()
            return 0
        if line in ("quit", "exit"):
            return 0
        if line == "help":
            print(HELP)
        elif line == "moves":
            print(" ".join(position.legal_moves()))
        elif line == "undo":
            if history:
                position, kept = history.pop()
                del actions[kept:]
            else:
                print("nothing to undo")
        elif line:
            before, played = position, len(actions)
            position = _play_line(position, line, actions)
            if len(actions) > played and not before.mid_chain:
                history.append((before, played))
    return _finish(position, actions)


def _play_line(position: Position, line: str, actions: list[str]) -> Position:
    """Play the tokens of one input line; an illegal one is reported and the rest skipped."""
    for token in line.split():
        passes = token.split("-")
        atomic = [token] if len(passes) <= 2 else [f"{a}-{b}" for a, b in zip(passes, passes[1:])] + ["end"]
        for action in atomic:
            if position.is_terminal:
                return position
            try:
                position = position.play(action)
            except IllegalMoveError as error:
                print(error)
                return position
            actions.append(action)
    return position
