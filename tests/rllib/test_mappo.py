"""MAPPO pieces without training: the RLlib env over the hierarchy, the centralized critics, the
phase configs and checkpoint loading (RLModules built without ``ray.init``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from hierarchy_configs import hierarchy_config
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from support.hierarchy_modules import (
    allowed,
    build_master,
    build_symbol,
    random_actions,
    random_episode,
)

from multiagent.config import RunConfig
from multiagent.envs.hierarchical_env import MASTER, HierarchicalTradingEnv
from multiagent.envs.market import EnvMarket
from multiagent.rllib.algo import build_hierarchy_config, hierarchy_model_configs
from multiagent.rllib.checkpoints import MASTER_MODULE, SYMBOL_MODULE
from multiagent.rllib.env import (
    SymbolAgentsEnv,
    TradingAgentsEnv,
    balanced_weights,
    market_for,
)
from multiagent.rllib.hierarchy import load_matching
from multiagent.rllib.modules import SymbolRLModule, freeze_parts
from multiagent.runs.prepare import PreparedData


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> RunConfig:
    return hierarchy_config(tmp_path_factory.mktemp("mappo"))


@pytest.fixture(scope="module")
def data(config: RunConfig) -> tuple[EnvMarket, PreparedData]:
    return market_for(config)


def stacked(rows: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(np.stack([r[key] for r in rows])) for key in rows[0]}


# the env ------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [1, 4, 5])
def test_master_observes_on_decision_bars_and_at_the_last_step(
    tmp_path: Path, interval: int
) -> None:
    config = hierarchy_config(tmp_path, env={"communication_interval": interval})
    market, prepared = market_for(config)
    env = TradingAgentsEnv(market, prepared.train_views, config.env, master=True)
    steps = random_episode(env, seed=1)
    last = len(steps) - 1
    assert last > 2 * interval  # several decisions in the episode
    seen = [i for i, (obs, *_) in enumerate(steps) if MASTER in obs]
    expected = sorted({*range(0, last + 1, interval), last})
    assert seen == expected
    # A reward for the master exactly when it is given an observation (after the reset).
    rewarded = [i for i, (_, rewards, *_) in enumerate(steps) if MASTER in rewards]
    assert rewarded == expected[1:]
    for i, (obs, *_) in enumerate(steps):
        assert set(obs) - {MASTER} == set(env.env.symbol_agents)
        if MASTER in obs:
            # The observation's own decision flag is on exactly on the decision bars.
            assert obs[MASTER]["obs"][-2] == float(i % interval == 0)
    # Only the last step ends the episode (truncated: the view ran out, nobody went bankrupt).
    for _, _, terminateds, truncateds in steps[1:-1]:
        assert not terminateds["__all__"] and not truncateds["__all__"]
    _, _, terminateds, truncateds = steps[-1]
    assert truncateds["__all__"] and not terminateds["__all__"]
    # Only ``__all__``: a per-agent flag on the last step would read as a termination.
    assert set(truncateds) == {"__all__"} and set(terminateds) == {"__all__"}
    assert env.agents == []


def test_master_reward_sums_the_per_bar_rewards_of_the_same_run(
    config: RunConfig, data: tuple[EnvMarket, PreparedData]
) -> None:
    """Against the bare env stepped with the same seed and actions: every bar's master reward is
    paid once, on the master's next observation; the symbol side is untouched."""
    market, prepared = data
    views = prepared.train_views
    wrapped = TradingAgentsEnv(market, views, config.env, master=True)
    bare = HierarchicalTradingEnv(market, views, config.env)
    bare.set_sampling_weights(balanced_weights(views).tolist())
    rng = np.random.default_rng(5)
    obs_w, _ = wrapped.reset(seed=11)
    obs_b, _ = bare.reset(seed=11)
    held: Any = None
    pending, paid, per_bar = 0.0, [], []
    while True:
        for agent in bare.symbol_agents:
            np.testing.assert_array_equal(
                obs_w[agent]["observations"], obs_b[agent]["observations"]
            )
        if MASTER in obs_w:
            np.testing.assert_array_equal(obs_w[MASTER]["obs"], obs_b[MASTER])
        actions_w = {a: allowed(rng, obs_w[a]["action_mask"]) for a in bare.symbol_agents}
        if MASTER in obs_w:
            held = rng.integers(wrapped.action_spaces[MASTER].nvec)
            actions_w[MASTER] = held
        obs_w, rew_w, term_w, trunc_w, _ = wrapped.step(actions_w)
        obs_b, rew_b, _, _, _ = bare.step({**actions_w, MASTER: held})
        for agent in bare.symbol_agents:
            assert rew_w[agent] == rew_b[agent]
        per_bar.append(rew_b[MASTER])
        pending += rew_b[MASTER]
        if MASTER in obs_w:
            assert rew_w[MASTER] == pytest.approx(pending, rel=1e-12, abs=1e-12)
            paid.append(rew_w[MASTER])
            pending = 0.0
        else:
            assert MASTER not in rew_w
        if term_w["__all__"] or trunc_w["__all__"]:
            break
    assert not bare.agents  # both episodes ended on the same step
    assert len(per_bar) > 20
    interval = config.env.communication_interval
    assert len(paid) == -(-len(per_bar) // interval)  # ceil: one payment per decision
    assert sum(paid) == pytest.approx(sum(per_bar), rel=1e-12)
    assert len(set(np.round(per_bar, 12))) > 1  # the per-bar rewards are not all equal


def test_master_inputs_split_the_global_state(
    config: RunConfig, data: tuple[EnvMarket, PreparedData]
) -> None:
    """``market`` (every slot's window) and ``state`` are together the env's ``state()``: each
    slot's block of ``state()`` is its window then the rest of its observation."""
    market, prepared = data
    env = TradingAgentsEnv(market, prepared.train_views, config.env, master=True)
    steps = random_episode(env, seed=2)
    inner = env.env
    observations = steps[-1][0][MASTER]  # the last step: the env still holds its state
    n, window, dim = inner.n_slots, inner.window_dim, inner.core.observations.dim
    windows = observations["market"].reshape(n, window)
    blocks = observations["state"][: n * (dim - window)].reshape(n, dim - window)
    rebuilt = np.concatenate(
        [
            np.concatenate([windows, blocks], axis=1).reshape(-1),
            observations["state"][n * (dim - window) :],
        ]
    )
    np.testing.assert_array_equal(rebuilt, inner.state())
    np.testing.assert_array_equal(observations["state"][n * (dim - window) :], observations["obs"])


def test_master_action_changes_budgets_only_on_decision_bars(
    config: RunConfig, data: tuple[EnvMarket, PreparedData]
) -> None:
    market, prepared = data
    env = TradingAgentsEnv(market, prepared.train_views, config.env, master=True)
    inner = env.env
    cfg = config.env
    levels = np.asarray(cfg.budget_levels)
    scales = np.asarray(cfg.risk_mode_scales)
    base = cfg.limits.max_gross_exposure / inner.n_slots

    def budgets_of(action: np.ndarray) -> np.ndarray:
        return np.minimum(levels[action[:-1]] * base * scales[action[-1]], cfg.limits.max_weight)

    rng = np.random.default_rng(3)
    observations, _ = env.reset(seed=4)
    applied: list[int] = []
    step = 0
    while True:
        decision = inner.decision_due()
        assert decision == (MASTER in observations)
        actions: dict[str, Any] = {
            a: allowed(rng, observations[a]["action_mask"]) for a in inner.symbol_agents
        }
        # A master action on every bar, a different one each time: only decision bars apply it.
        master_action = rng.integers(env.action_spaces[MASTER].nvec)
        actions[MASTER] = master_action
        before = inner.core.budget[0].copy()
        mode_before = int(inner.core.risk_mode[0])
        observations, _, terminateds, truncateds, _ = env.step(actions)
        after = inner.core.budget[0]
        if decision:
            np.testing.assert_allclose(after, budgets_of(master_action), rtol=0, atol=1e-12)
            assert int(inner.core.risk_mode[0]) == int(master_action[-1])
            applied.append(step)
        else:
            np.testing.assert_array_equal(after, before)
            assert int(inner.core.risk_mode[0]) == mode_before
        step += 1
        if terminateds["__all__"] or truncateds["__all__"]:
            break
    interval = cfg.communication_interval
    assert applied == list(range(0, step, interval))


@pytest.mark.parametrize(("master", "symbol_state"), [(True, True), (True, False), (False, True)])
def test_rllib_env_check_and_every_observation_in_its_space(
    config: RunConfig, data: tuple[EnvMarket, PreparedData], master: bool, symbol_state: bool
) -> None:
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    market, prepared = data
    env = TradingAgentsEnv(
        market, prepared.train_views, config.env, master=master, symbol_state=symbol_state
    )
    check_multiagent_environments(env)
    assert set(env.observation_spaces) == set(env.possible_agents) == set(env.action_spaces)
    assert (MASTER in env.possible_agents) == master
    symbol_space = env.observation_spaces["symbol_0"]
    assert isinstance(symbol_space, gym.spaces.Dict)
    assert ("state" in symbol_space.spaces) == symbol_state
    n_obs = 0
    for observations, rewards, _, _ in random_episode(env, seed=6):
        for agent, obs in observations.items():
            assert env.observation_spaces[agent].contains(obs), agent
            n_obs += 1
        for reward in rewards.values():
            assert isinstance(reward, float) and np.isfinite(reward)
    assert n_obs > 60 * len(env.env.symbol_agents)
    if symbol_state:
        assert symbol_space["state"] == env.observation_spaces.get(MASTER, symbol_space)["state"]


def test_symbol_agents_env_keeps_the_master_seat_neutral(
    config: RunConfig, data: tuple[EnvMarket, PreparedData]
) -> None:
    market, prepared = data
    env = SymbolAgentsEnv(market, prepared.train_views, config.env)
    equal = config.env.limits.max_gross_exposure / env.env.n_slots
    for observations, rewards, terminateds, truncateds in random_episode(env, seed=8):
        assert MASTER not in observations and MASTER not in rewards
        assert MASTER not in terminateds and MASTER not in truncateds
        np.testing.assert_allclose(env.env.core.budget[0], equal)


def test_episode_truncated_by_the_data_reaches_the_learner_as_truncated(
    config: RunConfig, data: tuple[EnvMarket, PreparedData]
) -> None:
    """The env truncates (the view ran out, nobody went bankrupt); the episode RLlib records
    from it must say so, or GAE uses 0 instead of V(last observation) as the bootstrap."""
    from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

    market, prepared = data
    env = TradingAgentsEnv(market, prepared.train_views, config.env, master=True)
    episode = record_episode(env, MultiAgentEpisode, seed=9)
    assert episode.is_done
    assert {a: s.is_truncated for a, s in episode.agent_episodes.items()} == dict.fromkeys(
        env.possible_agents, True
    )
    assert not episode.is_terminated
    assert not any(s.is_terminated for s in episode.agent_episodes.values())


def record_episode(env: TradingAgentsEnv, episode_cls: Any, seed: int) -> Any:
    """Feed one random episode into an RLlib ``MultiAgentEpisode`` the way the env runner does."""
    rng = np.random.default_rng(seed)
    observations, infos = env.reset(seed=seed)
    episode = episode_cls(
        observation_space=env.observation_spaces,
        action_space=env.action_spaces,
        agent_module_ids={
            a: MASTER_MODULE if a == MASTER else SYMBOL_MODULE for a in env.possible_agents
        },
    )
    episode.add_env_reset(observations=observations, infos=infos)
    while not episode.is_done:
        actions = random_actions(env, observations, rng)
        observations, rewards, terminateds, truncateds, infos = env.step(actions)
        episode.add_env_step(
            observations=observations,
            actions=actions,
            rewards=rewards,
            infos=infos,
            terminateds=terminateds,
            truncateds=truncateds,
        )
    return episode


# the modules ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rollout(
    config: RunConfig, data: tuple[EnvMarket, PreparedData]
) -> tuple[TradingAgentsEnv, list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """Real observations: (env, master inputs, symbol observations with state) of 2 episodes."""
    market, prepared = data
    env = TradingAgentsEnv(market, prepared.train_views, config.env, master=True, symbol_state=True)
    masters: list[dict[str, np.ndarray]] = []
    symbols: list[dict[str, np.ndarray]] = []
    for seed in (0, 1):
        for observations, *_ in random_episode(env, seed):
            for agent, obs in observations.items():
                (masters if agent == MASTER else symbols).append(obs)
    return env, masters, symbols


def perturbed(batch: dict[str, torch.Tensor], key: str, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch[key].shape, generator=generator)
    return {**batch, key: batch[key] + noise.to(batch[key].dtype)}


def actor_outputs(module: Any, obs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    with torch.no_grad():
        return [
            forward({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
            for forward in (
                module.forward_inference,
                module.forward_exploration,
                module.forward_train,
            )
        ]


def values(module: Any, obs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return module.compute_values({Columns.OBS: obs})


def test_master_critic_reads_the_global_state_and_the_actor_does_not(
    config: RunConfig, rollout: Any
) -> None:
    env, masters, _ = rollout
    module = build_master(config, env)
    obs = stacked(masters)
    assert obs["state"].shape == (len(masters), env.env.critic_state_dim)
    logits = actor_outputs(module, obs)
    value = values(module, obs)
    assert value.shape == (len(masters),)
    assert all(torch.equal(logits[0], other) for other in logits[1:])  # no dropout: one actor

    # The global state: the critic moves on every row, the actor not at all.
    moved = perturbed(obs, "state")
    for before, after in zip(logits, actor_outputs(module, moved), strict=True):
        assert torch.equal(before, after)
    assert ((values(module, moved) - value).abs() > 1e-6).all()

    # The market windows feed both (through the shared encoder).
    moved = perturbed(obs, "market")
    for before, after in zip(logits, actor_outputs(module, moved), strict=True):
        assert ((after - before).abs().amax(dim=-1) > 1e-6).all()
    assert ((values(module, moved) - value).abs() > 1e-6).all()

    # PPO's loss passes forward_train's embeddings to compute_values: the same values.
    with torch.no_grad():
        out = module.forward_train({Columns.OBS: obs})
        again = module.compute_values({Columns.OBS: obs}, embeddings=out[Columns.EMBEDDINGS])
    torch.testing.assert_close(again, value, rtol=0, atol=1e-6)


def test_master_gradients_reach_the_state_only_through_the_critic(
    config: RunConfig, rollout: Any
) -> None:
    env, masters, _ = rollout
    module = build_master(config, env)
    obs = stacked(masters)
    obs["state"] = obs["state"].clone().requires_grad_(True)
    logits = module.forward_train({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    assert logits.requires_grad
    (unused,) = torch.autograd.grad(logits.sum(), obs["state"], allow_unused=True)
    assert unused is None
    (grad,) = torch.autograd.grad(module.compute_values({Columns.OBS: obs}).sum(), obs["state"])
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("centralized", [True, False])
def test_symbol_value_head_reads_the_state_only_when_centralized(
    tmp_path: Path, rollout: Any, centralized: bool
) -> None:
    env, _, symbols = rollout
    config = hierarchy_config(tmp_path, joint={"centralized_critic": centralized})
    module = build_symbol(config, env)
    assert module.centralized_critic is centralized
    plain_inputs = module.pi[0].in_features
    assert module.vf[0].in_features == plain_inputs + (
        env.env.critic_state_dim if centralized else 0
    )
    obs = stacked(symbols)
    logits = actor_outputs(module, obs)
    value = values(module, obs)

    moved = perturbed(obs, "state")
    for before, after in zip(logits, actor_outputs(module, moved), strict=True):
        assert torch.equal(before, after)  # the actor never reads the state
    if centralized:
        assert ((values(module, moved) - value).abs() > 1e-6).all()
    else:
        assert torch.equal(values(module, moved), value)

    moved = perturbed(obs, "observations")
    assert not torch.equal(actor_outputs(module, moved)[0], logits[0])
    assert ((values(module, moved) - value).abs() > 1e-6).all()

    with torch.no_grad():
        out = module.forward_train({Columns.OBS: obs})
        again = module.compute_values({Columns.OBS: obs}, embeddings=out[Columns.EMBEDDINGS])
    torch.testing.assert_close(again, value, rtol=0, atol=1e-6)


def test_master_rl_module_from_a_real_observation_picks_valid_actions(
    config: RunConfig, rollout: Any
) -> None:
    env, masters, _ = rollout
    module = build_master(config, env)
    obs = stacked(masters)
    logits = actor_outputs(module, obs)[0]
    dist = module.get_exploration_action_dist_cls().from_logits(logits)
    actions = dist.sample().numpy()
    space = env.action_spaces[MASTER]
    assert all(space.contains(a.astype(np.int64)) for a in actions)
    assert torch.isfinite(dist.logp(torch.from_numpy(actions))).all()


# the phase configs -----------------------------------------------------------------------


def test_phase_model_configs_freeze_and_rate_the_right_parts(tmp_path: Path) -> None:
    config = hierarchy_config(
        tmp_path, joint={"symbol_actor_lr": 2e-5, "encoder_lr": 3e-5, "centralized_critic": True}
    )
    symbol, master = hierarchy_model_configs(config, "master", 3)
    assert symbol.encoder_mode == master.encoder_mode == "frozen"
    assert set(symbol.frozen) == {"core", "pi"}
    assert symbol.part_lrs == {} and symbol.centralized_critic is False
    assert master.encoder_lr is None  # the master learns at the phase's PPO lr
    symbol, master = hierarchy_model_configs(config, "joint", 3)
    assert symbol.encoder_mode == master.encoder_mode == "finetune"
    assert symbol.frozen == ()
    assert symbol.part_lrs == {"core": 2e-5, "pi": 2e-5}
    assert symbol.encoder_lr == master.encoder_lr == 3e-5
    assert symbol.centralized_critic is True
    assert master.n_slots == config.env.n_symbols
    # RLlib carries them as plain dicts (its checkpoints store them); they read back typed.
    assert type(symbol).from_rllib(symbol.to_rllib()) == symbol
    assert type(master).from_rllib(master.to_rllib()) == master


@pytest.mark.parametrize(
    ("phase", "adapt", "trained", "symbol_state"),
    [
        ("master", True, {"master", "symbol"}, False),
        ("master", False, {"master"}, False),
        ("joint", False, {"master", "symbol"}, True),
    ],
)
def test_hierarchy_ppo_config_trains_the_phase_modules(
    tmp_path: Path,
    data: tuple[EnvMarket, PreparedData],
    phase: str,
    adapt: bool,
    trained: set[str],
    symbol_state: bool,
) -> None:
    config = hierarchy_config(
        tmp_path,
        master={"symbol_value_heads_adapt": adapt, "ppo": {"lr": 7e-4, "gamma": 0.9}},
        joint={"centralized_critic": True, "ppo": {"lr": 5e-5, "gamma": 0.8}},
    )
    market, prepared = data
    env = TradingAgentsEnv(
        market, prepared.train_views, config.env, master=True, symbol_state=symbol_state
    )
    spaces = {
        SYMBOL_MODULE: (env.observation_spaces["symbol_0"], env.action_spaces["symbol_0"]),
        MASTER_MODULE: (env.observation_spaces[MASTER], env.action_spaces[MASTER]),
    }
    ppo = build_hierarchy_config(config, phase, spaces, market.n_features)
    assert set(ppo.policies_to_train) == trained
    assert ppo.env_config["master"] is True
    assert ppo.env_config["symbol_state"] is symbol_state
    settings = config.master if phase == "master" else config.joint
    assert ppo.lr == settings.ppo.lr and ppo.gamma == settings.ppo.gamma
    assert ppo.policy_mapping_fn(MASTER, None) == MASTER_MODULE
    assert ppo.policy_mapping_fn("symbol_2", None) == SYMBOL_MODULE


def test_load_matching_keeps_reshaped_parameters_fresh(tmp_path: Path, rollout: Any) -> None:
    env, _, _ = rollout
    plain = build_symbol(hierarchy_config(tmp_path, joint={"centralized_critic": False}), env)
    torch.manual_seed(1)
    central = build_symbol(hierarchy_config(tmp_path, joint={"centralized_critic": True}), env)
    before = {k: v.clone() for k, v in central.state_dict().items()}
    fresh = load_matching(central, plain.state_dict())
    assert fresh == ["vf.0.weight"]
    after = central.state_dict()
    assert torch.equal(after["vf.0.weight"], before["vf.0.weight"])
    for key, value in plain.state_dict().items():
        if key != "vf.0.weight":
            assert torch.equal(after[key], value), key


def test_freeze_parts_rejects_unknown_parts(rollout: Any, config: RunConfig) -> None:
    env, _, _ = rollout
    module = build_master(config, env)
    freeze_parts(module, ["context"])
    assert not any(p.requires_grad for p in module.context.parameters())
    assert all(p.requires_grad for p in module.pi.parameters())
    with pytest.raises(ValueError, match="unknown module part 'actor'"):
        freeze_parts(module, ["actor"])


@pytest.mark.parametrize("phase", ["master", "joint"])
def test_a_recurrent_symbol_core_is_frozen_then_slow_like_the_actor(
    tmp_path: Path, rollout: Any, phase: str
) -> None:
    from types import SimpleNamespace

    from multiagent.rllib.learner import SharedEncoderPPOLearner

    env, _, _ = rollout
    config = hierarchy_config(
        tmp_path,
        symbols={"policy": {"hidden": [16], "encoder": "scratch", "recurrent": "gru"}},
        joint={"symbol_actor_lr": 2e-5, "encoder_lr": 3e-5},
    )
    symbol_config, _ = hierarchy_model_configs(config, phase, env.env.market.n_features)
    module = RLModuleSpec(
        module_class=SymbolRLModule,
        observation_space=env.observation_spaces["symbol_0"],
        action_space=env.action_spaces["symbol_0"],
        model_config=symbol_config.to_rllib(),
    ).build()
    assert module.core is not None
    trainable = {name.split(".")[0] for name, p in module.named_parameters() if p.requires_grad}
    assert trainable == ({"vf"} if phase == "master" else {"encoder", "core", "pi", "vf"})
    # The learner's per-part rates (the joint phase's): core and actor slow, encoder its own.
    fake = SimpleNamespace(config=SimpleNamespace(lr=1e-4))
    rates = {id(p): lr for p, lr, _ in SharedEncoderPPOLearner._param_rates(fake, module)}
    assert len(rates) == len(list(module.parameters()))
    expected = (
        {"encoder": 1e-4, "core": 1e-4, "pi": 1e-4, "vf": 1e-4}
        if phase == "master"  # phase 3 sets no rates (the frozen parts are left out anyway)
        else {"encoder": 3e-5, "core": 2e-5, "pi": 2e-5, "vf": 1e-4}
    )
    if phase == "master":
        expected["encoder"] = config.symbols.policy.encoder_lr
    for name, param in module.named_parameters():
        assert rates[id(param)] == expected[name.split(".")[0]], name
