"""The batched rules engine: initial positions, legal actions, stepping, game end.

Every function takes a `State` of B games and works on whatever device it lives on. Legal
actions are generated once per new state (`step` does it), because the game-end checks
at the start of a turn need them anyway: "no legal action" and the forced-pass flag that
is part of the repetition key.
"""

from __future__ import annotations

from math import comb

import torch

from razzle.game.actions import END, KNIGHT_PLANES, NUM_SQUARES
from razzle.game.board import NO_SQUARE, PIECES_PER_SIDE, parse_square, per_device, tables
from razzle.game.rules import Rules
from razzle.game.state import NUM_SLOTS, State

INITIAL_SQUARES = (
    [parse_square(s) for s in ("b1", "c1", "d1", "e1", "f1")],
    [parse_square(s) for s in ("b8", "c8", "d8", "e8", "f8")],
)
INITIAL_CARRIER_SLOT = 2  # d1 / d8

# Code of a square for pass and knight generation: empty, blocking (opponent piece,
# ineligible own piece, off the board), or RECEIVER + slot for an own eligible piece.
EMPTY, BLOCKED, RECEIVER = 0, 1, 2


def initial_state(
    batch_size: int,
    rules: Rules | None = None,
    device: torch.device | str = "cpu",
    history_len: int | None = None,
) -> State:
    """B copies of the starting position. `history_len` (default max_turns + 1) bounds the
    number of turn-start positions kept for repetition; perft uses a shorter one."""
    rules = rules or Rules()
    history_len = history_len or rules.max_turns + 1
    B = batch_size

    def full(value, *shape, dtype=torch.int64):
        return torch.full((B, *shape), value, dtype=dtype, device=device)

    state = State(
        squares=torch.tensor(INITIAL_SQUARES, dtype=torch.int64, device=device).expand(B, 2, 5).clone(),
        eligible=full(False, 2, PIECES_PER_SIDE, dtype=torch.bool),
        carrier=full(INITIAL_CARRIER_SLOT, 2),
        to_move=full(0),
        mid_chain=full(False, dtype=torch.bool),
        last_knight=full(NO_SQUARE),
        turn=full(0),
        done=full(False, dtype=torch.bool),
        winner=full(-1),
        history=full(-1, history_len),
        actions=full(END, NUM_SLOTS),
        legal=full(False, NUM_SLOTS, dtype=torch.bool),
        receiver=full(0, 8),
        forced=full(False, dtype=torch.bool),
        rules=rules,
    )
    derive_legal(state)
    state.history[:, 0] = repetition_key(state)
    return state


def _side(t: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """[B, 2, ...] -> [B, ...] rows of the given side per game."""
    index = side.view(-1, *([1] * (t.dim() - 1))).expand(-1, 1, *t.shape[2:])
    return t.gather(1, index).squeeze(1)


@per_device
def _knight_planes(device: torch.device) -> torch.Tensor:
    """Index offset of each knight jump's plane (action = offset + from-square)."""
    return torch.arange(KNIGHT_PLANES, device=device) * NUM_SQUARES


@per_device
def _pass_planes(device: torch.device) -> torch.Tensor:
    """Index offset of each pass direction's plane (action = offset + carrier square)."""
    return (torch.arange(8, device=device) + KNIGHT_PLANES) * NUM_SQUARES


def derive_legal(state: State) -> None:
    """Fill state.actions, legal, receiver and forced from the core fields (in place)."""
    tab = tables(state.device)
    B = state.batch_size
    me = state.to_move
    slots = torch.arange(PIECES_PER_SIDE, device=state.device)

    my_squares = _side(state.squares, me)
    opp_squares = _side(state.squares, 1 - me)
    my_carrier = _side(state.carrier, me).unsqueeze(1)
    carrier_sq = my_squares.gather(1, my_carrier).squeeze(1)

    code = torch.zeros(B, NUM_SQUARES + 1, dtype=torch.int8, device=state.device)
    code[:, NO_SQUARE] = BLOCKED
    code.scatter_(1, opp_squares, BLOCKED)
    own_code = torch.where(_side(state.eligible, me), RECEIVER + slots, BLOCKED).to(torch.int8)
    code.scatter_(1, my_squares, own_code)

    # Passes: the first occupied square along each ray decides.
    ray = tab.rays.view(NUM_SQUARES + 1, -1).index_select(0, carrier_sq).view(B, 8, -1)
    along = code.gather(1, ray.view(B, -1)).view(ray.shape)
    first = (along != EMPTY).to(torch.uint8).argmax(2, keepdim=True)
    hit = along.gather(2, first).squeeze(2)
    pass_ok = hit >= RECEIVER
    state.receiver = (hit.long() - RECEIVER).clamp_(min=0)

    triggered = tab.adjacent.view(-1).take(carrier_sq * (NUM_SQUARES + 1) + state.last_knight)
    state.forced = ~state.mid_chain & triggered & pass_ok.any(1)

    # Knight moves: any non-carrier to an empty square, unless mid-chain or forced.
    dest = tab.knight_to.index_select(0, my_squares.view(-1)).view(B, PIECES_PER_SIDE, 8)
    empty = code.gather(1, dest.view(B, -1)).view(dest.shape) == EMPTY
    mover = (slots != my_carrier) & ~(state.mid_chain | state.forced).unsqueeze(1)
    knight_ok = empty & mover.unsqueeze(2)

    # Written as one concatenation (not into slices of one tensor), so that it compiles.
    state.actions = torch.cat(
        [
            (_knight_planes(state.device) + my_squares.unsqueeze(2)).view(B, -1),
            _pass_planes(state.device) + carrier_sq.unsqueeze(1),
            torch.full_like(carrier_sq, END).unsqueeze(1),
        ],
        1,
    )
    legal = torch.cat([knight_ok.view(B, -1), pass_ok, state.mid_chain.unsqueeze(1)], 1)
    state.legal = legal & ~state.done.unsqueeze(1)


@per_device
def _key_tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Binomial coefficients C(s, k) for the combinatorial number system, and the rank of
    every 10-bit owner pattern with five bits set (others never occur)."""
    binomials = torch.tensor([[comb(s, k) for k in range(11)] for s in range(NUM_SQUARES)], device=device)
    patterns = [p for p in range(1 << 10) if p.bit_count() == PIECES_PER_SIDE]
    owner_rank = torch.zeros(1 << 10, dtype=torch.int64, device=device)
    owner_rank[patterns] = torch.arange(len(patterns), device=device)
    return binomials, owner_rank


def repetition_key(state: State) -> torch.Tensor:
    """[B] int64 that is equal exactly when two turn-start positions are the same position
    of RULES.md (piece squares, balls, eligibility, side to move, forced flag).

    A bijective packing, no hashing: the set of ten occupied squares is ranked in the
    combinatorial number system (< C(56,10) < 2^36), then which of them are Player 2's
    (one of C(10,5) = 252 patterns, 8 bits), their eligibility (10 bits), each ball as the
    index of its carrier among its side's pieces (5 x 5 values, 5 bits), side and forced
    flag (2 bits): 61 bits in all.
    """
    binomials, owner_rank = _key_tables(state.device)
    B = state.batch_size
    squares = state.squares.view(B, 10)
    # Each piece's rank by square. Counted in int32: as fast as uint8 in eager mode, and
    # inductor's CPU code reduces 64-lane uint8 vectors very slowly.
    place = (squares.unsqueeze(1) < squares.unsqueeze(2)).sum(2, dtype=torch.int32).long()
    occupied_rank = binomials.view(-1).take(squares * 11 + place + 1).sum(1)
    bit = 1 << place
    owners = owner_rank.take(bit[:, PIECES_PER_SIDE:].sum(1))
    eligible = (bit * state.eligible.view(B, 10)).sum(1)
    balls = (state.squares < state.carrier_square.unsqueeze(2)).sum(2)
    return (
        occupied_rank
        | (owners << 36)
        | (eligible << 44)
        | ((balls[:, 0] * 5 + balls[:, 1]) << 54)
        | (state.to_move << 59)
        | (state.forced.long() << 60)
    )


def step(state: State, action: torch.Tensor, in_place: bool = False) -> State:
    """Apply one legal atomic action per game; finished games are left as they are.

    Actions must be legal (take them from `state.actions[state.legal]`); `Position.play`
    is the checked path for untrusted input. The result is a new State. With `in_place`,
    the repetition history (the one large field) is updated in the given state's tensor
    instead of a copy: for loops that own their states and drop the old one (self-play,
    benchmarks), never for positions that are branched from.
    """
    tab = tables(state.device)
    rules = state.rules
    B = state.batch_size
    me = state.to_move
    active = ~state.done

    plane, from_sq = action // NUM_SQUARES, action % NUM_SQUARES
    is_end = (action == END) & active
    is_knight = (plane < KNIGHT_PLANES) & active
    is_pass = (plane >= KNIGHT_PLANES) & (action != END) & active

    # Piece fields as [B, 10] (Player 1's five slots, then Player 2's); one flat slot each.
    base = (me * PIECES_PER_SIDE).unsqueeze(1)
    squares = state.squares.view(B, -1)
    my_squares = squares.gather(1, base + torch.arange(PIECES_PER_SIDE, device=state.device))
    mover = base + (my_squares == from_sq.unsqueeze(1)).to(torch.uint8).argmax(1, keepdim=True)
    dest = tab.knight_to.view(-1).take(from_sq * KNIGHT_PLANES + plane.clamp(max=KNIGHT_PLANES - 1))
    moved_to = torch.where(is_knight, dest, squares.gather(1, mover).squeeze(1))
    squares = squares.scatter(1, mover, moved_to.unsqueeze(1))
    eligible = state.eligible.view(B, -1)
    eligible = eligible.scatter(1, mover, eligible.gather(1, mover) | is_knight.unsqueeze(1))

    carrier_slot = state.carrier.gather(1, me.unsqueeze(1))
    catcher = state.receiver.gather(1, (plane - KNIGHT_PLANES).clamp(0, 7).unsqueeze(1))
    passer = base + carrier_slot
    eligible = eligible.scatter(1, passer, eligible.gather(1, passer) & ~is_pass.unsqueeze(1))
    new_carrier = torch.where(is_pass.unsqueeze(1), catcher, carrier_slot)
    carrier = state.carrier.scatter(1, me.unsqueeze(1), new_carrier)

    ball_rank = tab.rank.take(squares.gather(1, base + new_carrier).squeeze(1))
    won = is_pass & (ball_rank == torch.where(me == 0, 7, 0))
    turn_over = is_knight | is_end

    new = State(
        squares=squares.view(B, 2, PIECES_PER_SIDE),
        eligible=eligible.view(B, 2, PIECES_PER_SIDE),
        carrier=carrier,
        to_move=torch.where(turn_over, 1 - me, me),
        mid_chain=torch.where(turn_over, False, state.mid_chain | is_pass),
        last_knight=torch.where(is_knight, dest, torch.where(is_pass | is_end, NO_SQUARE, state.last_knight)),
        turn=state.turn + turn_over,
        done=state.done | won,
        winner=torch.where(won, me, state.winner),
        history=state.history,
        actions=state.actions,
        legal=state.legal,
        receiver=state.receiver,
        forced=state.forced,
        rules=rules,
    )
    derive_legal(new)

    # Start of a new turn: record the position, then the draw conditions.
    key = repetition_key(new)
    at = new.turn.clamp(max=new.history.shape[1] - 1).unsqueeze(1)
    recorded = torch.where(turn_over.unsqueeze(1), key.unsqueeze(1), state.history.gather(1, at))
    new.history = state.history.scatter_(1, at, recorded) if in_place else state.history.scatter(1, at, recorded)
    draw = turn_over & ~new.done & ((new.turn >= rules.max_turns) | ~new.legal.any(1))
    if rules.repetition_draw:
        occurrences = (new.history == key.unsqueeze(1)).sum(1, dtype=torch.int32)
        draw |= turn_over & (occurrences >= 3)
    new.done = new.done | draw
    new.legal &= ~new.done.unsqueeze(1)
    return new


def random_actions(state: State, generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random legal action per game (END for finished games)."""
    count = state.legal.sum(1, keepdim=True)
    pick = (torch.rand(count.shape, generator=generator, device=state.device) * count).long()
    slot = (state.legal.cumsum(1) <= pick).sum(1, keepdim=True).clamp_(max=state.legal.shape[1] - 1)
    return torch.where(state.done, END, state.actions.gather(1, slot).squeeze(1))
