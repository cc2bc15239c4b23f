import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { installGuards } from './guards'

const routes: RouteRecordRaw[] = [
  {
    path: '/',
    component: () => import('@/layouts/ChatLayout.vue'),
    meta: { auth: true },
    children: [
      { path: '', name: 'chat-new', component: () => import('@/views/chat/ChatView.vue') },
      { path: 'c/:id(\\d+)', name: 'chat', component: () => import('@/views/chat/ChatView.vue'), props: true },
    ],
  },
  {
    path: '/account',
    component: () => import('@/layouts/AccountLayout.vue'),
    meta: { auth: true },
    children: [
      { path: '', redirect: { name: 'profile' } },
      { path: 'profile', name: 'profile', component: () => import('@/views/account/ProfileView.vue') },
      { path: 'keys', name: 'keys', component: () => import('@/views/account/ApiKeysView.vue') },
      { path: 'usage', name: 'usage', component: () => import('@/views/account/UsageView.vue') },
      { path: 'prompts', name: 'prompts', component: () => import('@/views/account/PromptsView.vue') },
      { path: 'agents', name: 'my-agents', component: () => import('@/views/account/MyAgentsView.vue') },
    ],
  },
  {
    path: '/admin',
    component: () => import('@/layouts/AdminLayout.vue'),
    meta: { auth: true, admin: true },
    children: [
      { path: '', name: 'admin', component: () => import('@/views/admin/DashboardView.vue') },
      { path: 'channels', name: 'admin-channels', component: () => import('@/views/admin/ChannelsView.vue') },
      { path: 'users', name: 'admin-users', component: () => import('@/views/admin/UsersView.vue') },
      { path: 'keys', name: 'admin-keys', component: () => import('@/views/admin/AdminKeysView.vue') },
      { path: 'prices', name: 'admin-prices', component: () => import('@/views/admin/PricesView.vue') },
      { path: 'codes', name: 'admin-codes', component: () => import('@/views/admin/CodesView.vue') },
      { path: 'agents', name: 'admin-agents', component: () => import('@/views/admin/AgentsView.vue') },
      { path: 'conversations', name: 'admin-conversations', component: () => import('@/views/admin/ConversationsView.vue') },
      { path: 'ip-rules', name: 'admin-ip-rules', component: () => import('@/views/admin/IpRulesView.vue') },
      { path: 'logs', name: 'admin-logs', component: () => import('@/views/admin/LogsView.vue') },
      { path: 'settings', name: 'admin-settings', component: () => import('@/views/admin/SettingsView.vue') },
      { path: 'mail', name: 'admin-mail', component: () => import('@/views/admin/MailView.vue') },
    ],
  },
  { path: '/login', name: 'login', component: () => import('@/views/auth/LoginView.vue'), meta: { guest: true } },
  { path: '/register', name: 'register', component: () => import('@/views/auth/RegisterView.vue'), meta: { guest: true } },
  { path: '/forgot-password', name: 'forgot-password', component: () => import('@/views/auth/ForgotPasswordView.vue'), meta: { guest: true } },
  // Opened from mailed links: signed in or not.
  { path: '/reset-password', name: 'reset-password', component: () => import('@/views/auth/ResetPasswordView.vue') },
  { path: '/verify-email', name: 'verify-email', component: () => import('@/views/auth/VerifyEmailView.vue') },
  { path: '/admin/login', name: 'admin-login', component: () => import('@/views/auth/LoginView.vue'), props: { admin: true }, meta: { guest: true } },
  { path: '/:rest(.*)*', name: 'not-found', component: () => import('@/views/NotFoundView.vue') },
]

export const router = createRouter({ history: createWebHistory(), routes })
installGuards(router)
